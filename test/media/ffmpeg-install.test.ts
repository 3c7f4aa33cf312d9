// ffmpeg is not installed with frame-pipe: a system ffmpeg is found on PATH,
// an npm build is the user's opt-in, and when there is none the error says
// exactly what to install on each system. (The not-found path runs for real
// in test/package/pack.test.ts, in a project without any ffmpeg package.)

import test from 'ava'
import { readFile } from 'node:fs/promises'
import { DISCOVERY_ORDER, INSTALL_LINES, NPM_OPT_IN, NPM_PACKAGES, notFoundMessage } from '../../src/media/ffmpeg.js'

test('the not-found error names the install command for Linux (apt, dnf), macOS, Windows and the npm opt-in', (t) => {
  const text = notFoundMessage('ffmpeg')
  t.regex(text, /^ffmpeg not found: FRAME_PIPE_FFMPEG is not set, there is no ffmpeg in PATH and no npm build of it is installed\. /)
  for (const needle of [
    'sudo apt install ffmpeg',
    'sudo dnf install',
    'brew install ffmpeg',
    'winget install --id Gyan.FFmpeg',
    'choco install ffmpeg',
    NPM_OPT_IN,
    'ffmpeg=/path/to/ffmpeg',
    'FRAME_PIPE_FFMPEG=/path/to/ffmpeg',
  ])
    t.true(text.includes(needle), needle)
  for (const line of INSTALL_LINES) t.true(text.includes(`\n  ${line}`), line)
  t.regex(
    notFoundMessage('ffprobe', ['ffprobe-static did not load (boom)']),
    /^ffprobe not found: .* \(ffprobe-static did not load \(boom\)\)\. /,
  )
})

test('the npm builds are an opt-in: checked by discovery, never installed with frame-pipe', async (t) => {
  t.deepEqual(NPM_PACKAGES.ffmpeg, ['@ffmpeg-installer/ffmpeg', 'ffmpeg-static'])
  t.deepEqual(NPM_PACKAGES.ffprobe, ['@ffprobe-installer/ffprobe', 'ffprobe-static'])
  t.regex(DISCOVERY_ORDER, /then PATH, then an npm build you installed yourself/)
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>
  for (const name of [...NPM_PACKAGES.ffmpeg, ...NPM_PACKAGES.ffprobe]) {
    t.false(name in (pkg.dependencies ?? {}), `${name} is not a dependency`)
    t.false(name in (pkg.optionalDependencies ?? {}), `${name} is not an optional dependency (npm installs those)`)
  }
  t.deepEqual(pkg.peerDependenciesMeta!['@ffmpeg-installer/ffmpeg'], { optional: true })
})
