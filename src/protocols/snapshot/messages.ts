// The snapshot protocol's constants, shared by snapshot-server and
// snapshot-client (the wire protocol is described in ./server.ts): a client
// asks with one byte per request and gets a native header and the payload back.

/** The request byte: 'G'. */
export const SNAPSHOT_REQUEST = 0x47
/** Unanswered requests a client may have; more closes its connection. */
export const MAX_PENDING = 64
