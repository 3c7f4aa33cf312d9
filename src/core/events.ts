// Typed events for stage streams: a stage declares an events map (event name
// → what the listener gets), and its factory returns the stream with `on`,
// `once`, `off` … overloads for those names, so `stage.on('client', (e) => …)`
// knows `e`. Other events (data, end, error, close …) keep the stream's own
// signatures.

/** The listener methods for the events of `E`; `this` is the whole stage type. */
export interface TypedEvents<E> {
  on<K extends keyof E & string>(event: K, listener: (detail: E[K]) => void): this
  once<K extends keyof E & string>(event: K, listener: (detail: E[K]) => void): this
  off<K extends keyof E & string>(event: K, listener: (detail: E[K]) => void): this
  addListener<K extends keyof E & string>(event: K, listener: (detail: E[K]) => void): this
  removeListener<K extends keyof E & string>(event: K, listener: (detail: E[K]) => void): this
  prependListener<K extends keyof E & string>(event: K, listener: (detail: E[K]) => void): this
}

/** A stream `S` with the typed events `E` (E's overloads come first, so they win for E's names). */
export type WithEvents<S, E> = keyof E extends never ? S : TypedEvents<E> & S
