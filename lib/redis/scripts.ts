// What a named channel is in Redis: its keys, and the Lua scripts that number, store and read its
// messages, each one atomic step. A channel NAME owns, under the prefix (default `comet:`):
//   PREFIX{NAME}:meta   hash: epoch (random hex, new whenever the log starts afresh), seq (last id),
//                       tok (the last message's token), rid (the replication id it was written under),
//                       at (when the last message was published)
//   PREFIX{NAME}:log    stream of the last `history` messages, entry id `0-SEQ`, fields m = message,
//                       t = token, a = when it was published, p = when its predecessor was (`-`
//                       for none); times in milliseconds by Redis's clock (entries written before
//                       times were kept have neither: older than any window)
//   PREFIX{NAME}:live   pub/sub channel (sharded in a Redis Cluster): "EPOCH SEQ PREVTOKEN TOKEN MESSAGE" for every message, as
//                       it is stored (PREVTOKEN `-` for the first)
// Every message gets a random token, and carries its predecessor's: an instance can tell that the
// log it follows forked (a failover to a replica that had not received the last writes, then new
// messages numbered like the lost ones), even once the new messages have caught up with the old
// numbers.
// Times let a client with no id ask for what was published in the last MS milliseconds (SINCE):
// Redis's own clock stamps messages and measures the window, so the instances' clocks never
// matter. An entry's `p` is the time of the message before it: for the oldest entry held, that of
// the newest one dropped, which tells whether a window lost something.
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

// Shared by the scripts: the channel's epoch (false when it has none). An epoch is bound to the
// replication history of the server that writes it (its master_replid, kept in meta as `rid`):
// a replica promoted (a failover) or a server restarted from a snapshot starts a new history, and
// may not hold the last messages given out. Nobody can tell what it lost, so the epoch is retired:
// ids given out before never name the messages written after (an epoch from before `rid` existed
// is adopted as it is). In a Redis Cluster, keys also move with their slot to another primary,
// whole (MIGRATE): there only a history this server took over (its master_replid2, as a promoted
// replica) retires the epoch, and keys that came from elsewhere are adopted.
const EPOCH = `
local replication = redis.call('INFO', 'replication')
local rid = string.match(replication, 'master_replid:(%x+)')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch then
  local wrote = redis.call('HGET', KEYS[1], 'rid')
  if wrote and wrote ~= rid and (wrote == string.match(replication, 'master_replid2:(%x+)')
      or not string.find(redis.call('INFO', 'cluster'), 'cluster_enabled:1', 1, true)) then
    epoch = ARGV[1]
    redis.call('HSET', KEYS[1], 'epoch', epoch)
    redis.call('DEL', KEYS[2])
  end
  if wrote ~= rid then redis.call('HSET', KEYS[1], 'rid', rid) end
end
`

// Redis's clock in milliseconds, as a string of digits: TIME gives seconds and microseconds.
const NOW = `
local function now ()
  local time = redis.call('TIME')
  return time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
end
`

// A channel without an epoch gets one, with an empty log, as after a restart of Redis without
// persistence: ids of the old epoch can then never match new messages.
const NEW_EPOCH = `
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'rid', rid)
  redis.call('HDEL', KEYS[1], 'seq', 'tok', 'at')
  redis.call('DEL', KEYS[2])
end
`

/**
 * KEYS meta, log; ARGV new epoch (random, also the message's token), history, message, live
 * channel, historyTtl (ms, 0 for none). Numbers the message, stores it (trimmed to history) and
 * publishes it, in one step: ids follow the order of the log everywhere. With historyTtl, the
 * log expires that long after its last message, and the epoch's record twice that long: a
 * client resuming from the newest id of a quiet channel whose log aged out still finds where it
 * stood (nothing missed, no reset), and once the record is gone too, the next message starts a
 * new epoch, which no old id can match. Returns the id, EPOCH-SEQ.
 */
export const PUBLISH = EPOCH + NEW_EPOCH + NOW + `
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local prev = redis.call('HMGET', KEYS[1], 'tok', 'at')
local at = now()
redis.call('HSET', KEYS[1], 'tok', ARGV[1], 'at', at)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. seq, 'm', ARGV[3], 't', ARGV[1], 'a', at, 'p', prev[2] or '-')
redis.call('PUBLISH', ARGV[4], epoch .. ' ' .. seq .. ' ' .. (prev[1] or '-') .. ' ' .. ARGV[1] .. ' ' .. ARGV[3])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
return epoch .. '-' .. seq
`

/** PUBLISH for a Redis Cluster: the message goes out on sharded pub/sub, within the channel's shard only. */
export const SHARDED_PUBLISH = PUBLISH.replace("redis.call('PUBLISH',", "redis.call('SPUBLISH',")

// The token of entry ARGV[3] when the log still holds it, else false.
const TOKEN_AT = `
local function tokenAt (seq)
  local entry = redis.call('XRANGE', KEYS[2], '0-' .. seq, '0-' .. seq)[1]
  return entry and entry[2][4] or false
end
`

/**
 * KEYS meta, log; ARGV new epoch, known epoch, after, count. Returns { epoch, last seq, last
 * token }, and when the epoch is the known one, the entries after seq `after` (at most `count`)
 * and the token of `after` itself (false once trimmed): where an instance stands, whether the log
 * it read before is still this one, and what it missed, read together. A channel nobody published
 * in (or whose keys expired) has the epoch '' and nothing else: reading it writes nothing.
 */
export const READ = EPOCH + TOKEN_AT + `
if not epoch then
  if ARGV[2] ~= '' then return { '', 0, '-' } end
  return { '', 0, '-', {} }
end
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local tok = redis.call('HGET', KEYS[1], 'tok') or '-'
if epoch ~= ARGV[2] then return { epoch, last, tok } end
return { epoch, last, tok, redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[3], '+', 'COUNT', ARGV[4]), tokenAt(ARGV[3]) }
`

/**
 * KEYS meta, log; ARGV new epoch, known epoch, seq, its token. For a log that went back in time or
 * forked (a failover to a replica that had not received the last writes): the old epoch is
 * retired, so ids that were handed out before cannot point at other messages. Does nothing if
 * another instance did it first.
 */
export const RETIRE_EPOCH = TOKEN_AT + `
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then return 0 end
local seq = tonumber(ARGV[3])
local token = tokenAt(seq)
if tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < seq or (token and token ~= ARGV[4]) then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
`

/**
 * KEYS meta, log; ARGV since (ms). For a client with no id that asks for what was published in the
 * last `since` ms, by Redis's clock: returns { epoch ('' for none), the seq to replay from }, the
 * seq after the log's last when nothing is in the window, 0 when a message in the window is no
 * longer held (trimmed, or the log expired). The log's times grow with its seqs: a binary search,
 * one entry per step, keeps the read bounded however long the log.
 */
export const SINCE = NOW + `
local cutoff = tonumber(now()) - tonumber(ARGV[1])
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'at')
local function field (entry, name)
  if not entry then return -1 end
  for i = 1, #entry[2], 2 do
    if entry[2][i] == name then return tonumber(entry[2][i + 1]) or -1 end
  end
  return -1
end
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
local dropped = oldest and field(oldest, 'p') or (tonumber(meta[3]) or -1)
if dropped >= cutoff then return { meta[1] or '', 0 } end
if not oldest then return { meta[1] or '', tonumber(meta[2] or '0') + 1 } end
local low = tonumber(string.sub(oldest[1], 3))
local high = tonumber(string.sub(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1][1], 3)) + 1
while low < high do
  local middle = math.floor((low + high) / 2)
  if field(redis.call('XRANGE', KEYS[2], '0-' .. middle, '0-' .. middle)[1], 'a') >= cutoff then high = middle else low = middle + 1 end
end
return { meta[1] or '', low }
`
