package redisstore

import "github.com/redis/go-redis/v9"

// The scripts build the keys of the sets and hashes they touch from the
// prefix (ARGV[1]); KEYS[1] is the key the call is about. On Redis Cluster
// every key must then hash to one slot: see Options.Prefix.
//
// Times are Unix milliseconds, passed as decimal strings. Every script
// returns entries as arrays of the hash's fields in the order of
// entryFields, with "" for a missing field.

// luaCommon holds the helpers the scripts share.
const luaCommon = `
local FIELDS = {'id', 'actor_id', 'actor_name', 'target_id', 'target_name', 'reason', 'started', 'deadline', 'ended', 'cause'}
local p = ARGV[1]

local function sets(actor, target)
  return {p .. 'actor:' .. actor, p .. 'target:' .. target, p .. 'live'}
end

-- fill replaces the missing fields of an HMGET reply by "".
local function fill(f)
  for i = 1, #FIELDS do
    if not f[i] then f[i] = '' end
  end
  return f
end

-- finish marks the entry in key, whose fields are f, ended at at with
-- cause by the call token, and takes it out of the live sets.
local function finish(key, f, at, cause, token)
  redis.call('HSET', key, 'ended', at, 'cause', cause, 'end_token', token)
  for _, set in ipairs(sets(f[2], f[4])) do
    redis.call('ZREM', set, f[1])
  end
  f[9], f[10] = at, cause
  return f
end
`

// startScript records a new entry.
//
// KEYS[1] the entry's hash. ARGV: prefix, id, actor ID, actor name, target
// ID, target name, reason, started, deadline, when the hash expires, grace
// (ms), trim (drop set members whose deadline is before it).
//
// Returns 1 when it wrote the entry, 0 when the same entry (same actor,
// target, start and deadline) was there already, as when a client retries
// a Start whose reply it lost, and 2 when another entry has the ID.
var startScript = redis.NewScript(luaCommon + `
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  local f = redis.call('HMGET', key, 'actor_id', 'target_id', 'started', 'deadline')
  if f[1] == ARGV[3] and f[2] == ARGV[5] and f[3] == ARGV[8] and f[4] == ARGV[9] then
    return 0
  end
  return 2
end
redis.call('HSET', key, 'id', ARGV[2], 'actor_id', ARGV[3], 'actor_name', ARGV[4],
  'target_id', ARGV[5], 'target_name', ARGV[6], 'reason', ARGV[7],
  'started', ARGV[8], 'deadline', ARGV[9])
redis.call('PEXPIREAT', key, ARGV[10])
local grace = tonumber(ARGV[11])
for _, set in ipairs(sets(ARGV[3], ARGV[5])) do
  redis.call('ZADD', set, ARGV[9], ARGV[2])
  redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. ARGV[12])
  local top = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', set, string.format('%.0f', tonumber(top[2]) + grace))
  end
end
return 1
`)

// endIDScript ends one entry by ID, whatever its deadline.
//
// KEYS[1] the entry's hash. ARGV: prefix, at, cause, the call's token.
//
// Returns the entry, or an empty array when there is none or it had ended
// already. An entry that this call's token ended is returned again, so that
// a client's retry after a lost reply gets the answer of the first attempt.
var endIDScript = redis.NewScript(luaCommon + `
local key = KEYS[1]
local f = redis.call('HMGET', key, unpack(FIELDS))
if not f[1] then
  return {}
end
if f[9] then
  if redis.call('HGET', key, 'end_token') == ARGV[4] then
    return {fill(f)}
  end
  return {}
end
return {finish(key, fill(f), ARGV[2], ARGV[3], ARGV[4])}
`)

// endSetScript ends the live entries of one actor or one target.
//
// KEYS[1] the actor's or target's set. ARGV: prefix, at, cause, the call's
// token, trim (drop set members whose deadline is before it), replay (ms
// to keep the list of what it ended).
//
// Returns the entries it ended. It keeps their IDs for a while under
// prefix .. 'end:' .. token, and a second call with the same token returns
// them again, so that a client's retry after a lost reply gets the answer
// of the first attempt.
var endSetScript = redis.NewScript(luaCommon + `
local set = KEYS[1]
local done = p .. 'end:' .. ARGV[4]
local out = {}
if redis.call('EXISTS', done) == 1 then
  for _, id in ipairs(redis.call('LRANGE', done, 0, -1)) do
    local f = redis.call('HMGET', p .. 'imp:' .. id, unpack(FIELDS))
    if f[1] then
      out[#out + 1] = fill(f)
    end
  end
  return out
end
redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. ARGV[5])
local at = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', set, '(' .. ARGV[2], '+inf')
for _, id in ipairs(ids) do
  local key = p .. 'imp:' .. id
  local f = redis.call('HMGET', key, unpack(FIELDS))
  if not f[1] then
    redis.call('ZREM', set, id)
  elseif not f[9] and tonumber(f[8]) > at then
    out[#out + 1] = finish(key, fill(f), ARGV[2], ARGV[3], ARGV[4])
    redis.call('RPUSH', done, id)
  end
end
if #out > 0 then
  redis.call('PEXPIRE', done, ARGV[6])
end
return out
`)
