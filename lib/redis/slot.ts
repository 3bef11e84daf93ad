// The slot of a key in a Redis Cluster, computed as Redis does (the cluster specification's
// "Key distribution model"): CRC16 (XMODEM) of the key's hash tag, modulo 16384. Ours, so that the
// broker can tell which node serves a channel without reaching into ioredis's dependencies.

/** Slots of a Redis Cluster. */
const SLOTS = 16384

// CRC16-CCITT as XMODEM computes it (polynomial 0x1021, start 0, nothing reflected), a byte at a time.
const TABLE = new Uint16Array(256)
for (let byte = 0; byte < 256; byte++) {
  let crc = byte << 8
  for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? (crc << 1) ^ 0x1021 : crc << 1
  TABLE[byte] = crc
}

/** CRC16 (XMODEM) of the bytes of `text` in UTF-8. */
export function crc16 (text: string): number {
  let crc = 0
  for (const byte of Buffer.from(text)) crc = ((crc << 8) ^ TABLE[((crc >> 8) ^ byte) & 0xff]) & 0xffff
  return crc
}

/**
 * The slot of `key`: only what is between its first `{` and the next `}` counts (its hash tag),
 * unless that is empty or there is no such pair; then the whole key does.
 */
export function slotOf (key: string): number {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  const tagged = close > open + 1 ? key.slice(open + 1, close) : key
  return crc16(tagged) % SLOTS
}
