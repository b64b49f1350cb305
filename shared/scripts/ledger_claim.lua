-- include: dispatch
-- include: user_window
-- A worker's copy of a job asks to run it, by the job's ledger (shared/ledger.py): the mailbox claim of claim.lua
-- (tombstones of lost copies included), the ledger and the conversation's memory, in one round trip.
-- KEYS: the message's ledger, the mailbox leases sorted set.
-- ARGV: now_ms, lease_ms, token, inbox prefix, run prefix, memory prefix, memory max, memory ttl_s, then the per-user
-- message window (workers/clients/user_rate_limit.py): messages per window (0 = off), window (us), key prefix, then
-- the conversation state prefix (shared/ledger.py: its opt-out and pause, read by workers/pipelines/controls.py),
-- then how many inbox entries queued behind this job to return (0 = none: burst merging off).
-- With the window on, the message is counted in its user's window here (its decision becomes the ledger's
-- `stage:user_limit`, `user_window=counted`): a message that turns out not to go to a model is taken back
-- (user_window_release.lua). The mailbox runs one message of a user at a time, so nothing else sees the count.
-- Returns {R.CLAIMED (or R.CLAIMED_AFTER_WORKER_LOST / R.CLAIMED_AFTER_TIME_LIMIT: see release_lost.lua), ledger
-- fields as a flat list, memory entries, {opted_out, paused_until} of the conversation's state, the inbox entries
-- queued behind it (workers/delivery/burst.py reads them; none once the ledger names its closed `burst`)}, or
-- {R.NOT_HEAD} (no longer the mailbox's head: a stale redelivery),
-- {R.HELD_ELSEWHERE} (another live copy holds it), {R.NO_LEDGER} (expired, or never written).
local conv = redis.call('HGET', KEYS[1], 'conv')
local task = redis.call('HGET', KEYS[1], 'task')
if not conv or not task then return {R.NO_LEDGER} end
local inbox = ARGV[4] .. conv
local run = ARGV[5] .. task
local head = redis.call('LINDEX', inbox, 0)
if not head or head_id(head) ~= task then return {R.NOT_HEAD} end
local result = R.CLAIMED
local holder = redis.call('GET', run)
if holder and string.sub(holder, 1, 5) == 'lost:' then
  -- The previous copy's tombstone: take the claim and tell the caller how that copy ended.
  result = (string.sub(holder, 6) == 'time_limit') and R.CLAIMED_AFTER_TIME_LIMIT or R.CLAIMED_AFTER_WORKER_LOST
  redis.call('SET', run, ARGV[3], 'PX', ARGV[2])
elseif not redis.call('SET', run, ARGV[3], 'NX', 'PX', ARGV[2]) then
  if holder ~= ARGV[3] then return {R.HELD_ELSEWHERE} end
  redis.call('PEXPIRE', run, ARGV[2])
end
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), inbox)
redis.call('HSET', KEYS[1], 'claim', ARGV[3], 'claimed_ms', ARGV[1])
-- A new run: how the previous one ended (`outcome`, e.g. deferred) is no longer the message's state.
redis.call('HDEL', KEYS[1], 'outcome')
redis.call('HSETNX', KEYS[1], 'first_claimed_ms', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'runs', 1)
local limit = tonumber(ARGV[9] or '0')
if limit > 0 and redis.call('HEXISTS', KEYS[1], 'stage:user_limit') == 0 then
  local user = ARGV[11] .. string.sub(redis.sha1hex(conv), 1, 16)
  local member = string.sub(redis.sha1hex(KEYS[1]), 1, 16)
  local admitted = user_window(user .. ':log', user .. ':notice', member, limit, tonumber(ARGV[10]))
  local verdict = 'quiet'
  if admitted == R.USER_ANSWER then verdict = 'answer' elseif admitted == R.USER_SLOW_DOWN then verdict = 'slow_down' end
  redis.call('HSET', KEYS[1], 'stage:user_limit', '{"v":"' .. verdict .. '","ms":0,"at":' .. ARGV[1] .. '}',
    'user_window', 'counted')
end
local memory = ARGV[6] .. conv
local history = redis.call('LRANGE', memory, -tonumber(ARGV[7]), -1)
-- Reading is use: refresh the conversation's memory window, as ConversationMemory.load does.
redis.call('EXPIRE', memory, ARGV[8])
local state = redis.call('HMGET', (ARGV[12] or 'lp:conv:') .. conv, 'opted_out', 'paused_until', 'kept_answers')
local behind = {}
local peek = tonumber(ARGV[13] or '0')
if peek > 0 and redis.call('HEXISTS', KEYS[1], 'burst') == 0 then
  behind = redis.call('LRANGE', inbox, 1, peek)
end
return {result, redis.call('HGETALL', KEYS[1]), history, state, behind}
