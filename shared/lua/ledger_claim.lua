-- Claim a job by its ledger and load what the job needs, in one round trip (see shared/ledger.py).
-- KEYS[1] the message's ledger, KEYS[2] the mailbox leases sorted set.
-- ARGV: now_ms, lease_ms, token, inbox prefix, run prefix, memory prefix, memory max, memory ttl_s.
-- Returns {code}: 1 claimed (then {1, ledger fields as a flat list, memory entries}), 0 the job is not its
-- conversation's head (a stale redelivery), -1 another live copy holds it, -2 no ledger (expired or never written).
local conv = redis.call('HGET', KEYS[1], 'conv')
local task = redis.call('HGET', KEYS[1], 'task')
if not conv or not task then return {-2} end
local inbox = ARGV[4] .. conv
local run = ARGV[5] .. task
local head = redis.call('LINDEX', inbox, 0)
if not head or string.sub(head, 1, #task + 1) ~= task .. ' ' then return {0} end
if not redis.call('SET', run, ARGV[3], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', run) ~= ARGV[3] then return {-1} end
  redis.call('PEXPIRE', run, ARGV[2])
end
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), inbox)
redis.call('HSET', KEYS[1], 'claim', ARGV[3], 'claimed_ms', ARGV[1])
redis.call('HSETNX', KEYS[1], 'first_claimed_ms', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'runs', 1)
local memory = ARGV[6] .. conv
local history = redis.call('LRANGE', memory, -tonumber(ARGV[7]), -1)
-- Reading is use: refresh the conversation's memory window, as ConversationMemory.load does.
redis.call('EXPIRE', memory, ARGV[8])
return {1, redis.call('HGETALL', KEYS[1]), history}
