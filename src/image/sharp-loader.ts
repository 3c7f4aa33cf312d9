// sharp, loaded on first use. Loading it (libvips and its dependencies, about
// 20 MB of shared libraries, and sharp's JavaScript) took about 150-250 ms of
// the CLI's start-up on the 2-core test machine, and a pipeline that never
// touches pixels (a relay: `tcp-server ! unprefix ! prefix ! tcp-client`) or
// whose JPEG work the libjpeg-turbo binding does (jpeg-codec.ts) has no use
// for it. Every module that needs sharp gets it here, so nothing imports it at
// the top level (types only: `import type` is erased).

import type SharpModule from 'sharp'

export type Sharp = typeof SharpModule

let loading: Promise<Sharp> | undefined
let loaded: Sharp | undefined
let cacheOff = false

/** sharp, loading it the first time (ESM: the same instance as an application's own `import sharp`). */
export function loadSharp(): Promise<Sharp> {
  loading ??= import('sharp').then((m) => {
    loaded = m.default
    if (cacheOff) loaded.cache(false)
    return loaded
  })
  return loading
}

/**
 * Start loading sharp now, for a stage that will need it for its first frame
 * (png, webp, resize): the load overlaps the rest of the pipeline's start.
 * A failure to load surfaces when the stage first uses it.
 */
export function preloadSharp(): void {
  loadSharp().catch(() => {})
}

/**
 * Turn off sharp's operation cache, now or when sharp loads. The CLI does:
 * frames are never encoded twice with the same input, so the cache would
 * only hold memory. (A library user's own sharp settings are left alone.)
 */
export function disableSharpCache(): void {
  cacheOff = true
  loaded?.cache(false)
}
