// `frame-pipe --version`: what a bug report needs, frame-pipe, Node, sharp and
// libvips, and the ffmpeg/ffprobe that discovery finds (path and version).
// Everything is loaded here, when asked: not by every command.

import { readFileSync } from 'node:fs'
import { execFile } from 'node:child_process'

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** The lines of `--version`. Never throws: a part that cannot be found says why. */
export async function versionText(): Promise<string> {
  const lines = [`frame-pipe ${packageVersion()}`, `node ${process.version} (${process.platform}-${process.arch})`]
  try {
    const { default: sharp } = await import('sharp')
    const v = sharp.versions as Record<string, string | undefined>
    lines.push(`sharp ${v.sharp ?? '?'} (libvips ${v.vips ?? '?'}${v.mozjpeg ? `, mozjpeg` : ''})`)
  } catch (err) {
    lines.push(`sharp: cannot be loaded (${firstLine(err)})`)
  }
  const { findTool } = await import('../media/ffmpeg.js')
  for (const tool of ['ffmpeg', 'ffprobe'] as const) {
    try {
      const found = await findTool(tool, undefined)
      lines.push(`${tool} ${(await toolVersion(found.path)) ?? '(version unknown)'} ${found.path} (${found.from})`)
    } catch (err) {
      // Short here: the full message (what to install on which system) comes with the stage that needs it.
      lines.push(`${tool}: ${(err as Error).message.split('. ')[0]} (camera, video and mp4 need it; see docs/install.md)`)
    }
  }
  return lines.join('\n')
}

/** `ffmpeg version 5.1.6-0+deb12u1 Copyright …` → `5.1.6-0+deb12u1`. */
function toolVersion(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(path, ['-version'], { timeout: 5000, windowsHide: true }, (err, stdout) => {
      if (err) return resolve(undefined)
      resolve(/version\s+(\S+)/.exec(String(stdout))?.[1])
    })
  })
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!
}
