// The part of picomatch (4.x, CommonJS, no bundled types) that files-source.ts uses.
declare module 'picomatch' {
  interface PicomatchOptions {
    dot?: boolean
    nocase?: boolean
    windows?: boolean
    posix?: boolean
  }
  interface ScanResult {
    base: string
    glob: string
    isGlob: boolean
  }
  interface Picomatch {
    (glob: string | string[], options?: PicomatchOptions): (input: string) => boolean
    scan(input: string, options?: PicomatchOptions): ScanResult
  }
  const picomatch: Picomatch
  export default picomatch
}
