// Node built-ins that most pipelines never touch, loaded on first use
// (process.getBuiltinModule) instead of imported at the top: each import cost
// every start-up milliseconds on the test machine, whose node starts in about
// 45 ms: node:crypto about 7 ms, node:tls about 7 ms more, node:zlib about
// 4.5 ms. A plain TCP sender or receiver needs none of them; TLS, tokens and
// CRC-32 checksums do, and load them when they are first used.

export function nodeTls(): typeof import('node:tls') {
  return process.getBuiltinModule('node:tls')
}

export function nodeCrypto(): typeof import('node:crypto') {
  return process.getBuiltinModule('node:crypto')
}

/** zlib's CRC-32 (the native header's checksum). */
export function crc32(data: Uint8Array): number {
  return process.getBuiltinModule('node:zlib').crc32(data)
}
