// Warnings that can repeat with every frame (drops of a slow subscriber,
// oversized frames) must not turn into a flood of log lines: the first goes
// out at once, then at most one per interval, saying how many were held back.

export function throttle(emit: (message: string) => void, intervalMs: number, clock: () => number = Date.now): (message: string) => void {
  let last = -Infinity
  let held = 0
  return (message) => {
    const t = clock()
    if (t - last < intervalMs) {
      held++
      return
    }
    last = t
    emit(held > 0 ? `${message} (and ${held} more since the last such line)` : message)
    held = 0
  }
}
