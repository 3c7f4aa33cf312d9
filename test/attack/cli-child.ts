// The frame-pipe command from source, for the attack tests: what
// bin/frame-pipe.js runs from dist/, without needing a build.
// `node --import tsx test/attack/cli-child.ts [--json] '<pipeline>'`

import { main } from '../../src/cli/main.js'

const code = await main(process.argv.slice(2))
process.exitCode = code
setTimeout(() => process.exit(code), 3000).unref()
