// What a named channel is in Redis: its keys, and the Lua scripts that number, store and read its
// messages, each one atomic step. A channel NAME owns, under the prefix (default `comet:`):
//   PREFIX{NAME}:meta   hash: epoch (random hex, new whenever the log starts afresh), seq (last id)
//   PREFIX{NAME}:log    stream of the last `history` messages, entry id `0-SEQ`, field m = message
//   PREFIX{NAME}:live   pub/sub channel: "EPOCH SEQ MESSAGE" for every message, as it is stored
// Every key of a channel starts with the same `PREFIX{NAME`, so its hash tag, and its Redis Cluster
// slot, is the same whatever NAME holds.

export interface ChannelKeys {
  meta: string
  log: string
  live: string
}

export function channelKeys (prefix: string, name: string): ChannelKeys {
  const base = `${prefix}{${name}}`
  return { meta: `${base}:meta`, log: `${base}:log`, live: `${base}:live` }
}

// Shared by the scripts: the channel's epoch, made (with an empty log) when there is none, as after
// a restart of Redis without persistence: ids of the old epoch can then never match new messages.
const EPOCH = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('HDEL', KEYS[1], 'seq')
  redis.call('DEL', KEYS[2])
end
`

/**
 * KEYS meta, log; ARGV new epoch, history, message, live channel. Numbers the message, stores it
 * (trimmed to history) and publishes it, in one step: ids follow the order of the log everywhere.
 * Returns the id, EPOCH-SEQ.
 */
export const PUBLISH = EPOCH + `
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. seq, 'm', ARGV[3])
redis.call('PUBLISH', ARGV[4], epoch .. ' ' .. seq .. ' ' .. ARGV[3])
return epoch .. '-' .. seq
`

/**
 * KEYS meta, log; ARGV new epoch, known epoch, after, count. Returns { epoch, last seq }, and when
 * the epoch is the known one, the entries after seq `after` (at most `count`): where an instance
 * stands, and what it missed, read together.
 */
export const READ = EPOCH + `
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if epoch ~= ARGV[2] then return { epoch, last } end
return { epoch, last, redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[3], '+', 'COUNT', ARGV[4]) }
`

/**
 * KEYS meta, log; ARGV new epoch, known epoch, seq. For a log that went back in time (a failover
 * to a replica that had not received the last writes): the old epoch is retired, so ids that were
 * handed out before cannot point at other messages. Does nothing if another instance did it first.
 */
export const RETIRE_EPOCH = `
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[2] and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
  redis.call('DEL', KEYS[2])
end
return 1
`
