// Which security options a wire can carry, checked while a description is
// planned, before any stage is loaded: plain rules, no I/O (launch imports
// this without loading TLS or any network stage).

/** Stages whose wire is a seed's: their peers cannot answer a token check. */
const SEED_PROTOCOLS: Record<string, string> = {
  'cmd-server': "seed 003's command protocol",
  'cmd-client': "seed 003's command protocol",
  'reg-server': "seed 004's registration protocol",
  'reg-client': "seed 004's registration protocol",
}

/**
 * A hint for an option a stage does not have, when it is a security option
 * the stage's wire cannot carry (token= on cmd-*, TLS on reg-*), else undefined.
 */
export function securityOptionHint(stage: string, option: string): string | undefined {
  const wire = SEED_PROTOCOLS[stage]
  if (!wire) return undefined
  if (option === 'token' || option === 'tokens' || option === 'tokenName') {
    return stage.startsWith('cmd')
      ? `${stage} speaks ${wire}, which cannot carry a token; between two frame-pipes, TLS with client certificates (ca= on the server, cert=/key= on the client) authenticates it, or use snapshot-server/snapshot-client with token=`
      : `${stage} speaks ${wire}, which cannot carry a token; use tcp-server/tcp-client with header=native, or udp with token=`
  }
  if (stage.startsWith('reg') && ['cert', 'key', 'ca', 'tls', 'servername', 'keyPassphrase'].includes(option)) {
    return `${stage} sends its frames over UDP, which TLS cannot wrap; use tcp-server/tcp-client (TLS and token=) or udp-server/udp-client token= (signed datagrams)`
  }
  return undefined
}

/** A stage of a planned pipeline, as the wire check needs it. */
export interface PlannedLink {
  name: string
  kind: string
  options: Record<string, unknown>
}

/**
 * A tcp-server or tcp-client with a token next to a prefix or unprefix with a
 * seed header (u32be, u32le, ii, i64le, ascii): the peers such a wire is for
 * cannot answer a token check, so it is refused before anything starts.
 * Returns the index of the offending stage and the message.
 */
export function tokenWireProblem(stages: readonly PlannedLink[]): { index: number; message: string } | undefined {
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i]!
    if (s.name !== 'tcp-server' && s.name !== 'tcp-client') continue
    const token = (s.options.token ?? '') !== '' || (s.options.tokens ?? '') !== ''
    if (!token) continue
    const neighbour = s.kind === 'sink' ? stages[i - 1] : stages[i + 1]
    if (!neighbour || (neighbour.name !== 'prefix' && neighbour.name !== 'unprefix')) continue
    const header = String(neighbour.options.header ?? 'u32be')
    if (header === 'native' || header === 'auto') continue
    return {
      index: i,
      message:
        `${s.name}: token= needs frame-pipe's native wire, but ${neighbour.name} has header=${header}, a seed wire whose peers cannot answer a token check: ` +
        `give header=native on both ends, or drop token= (TLS with client certificates still guards a seed wire between two frame-pipes)`,
    }
  }
  return undefined
}
