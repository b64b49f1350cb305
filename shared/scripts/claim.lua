-- include: dispatch
-- A worker's copy of a job asks to run it.
-- KEYS: inbox, leases, run. ARGV: task_id, now_ms, lease_ms, token.
-- Returns R.CLAIMED (this copy may run the job), R.NOT_HEAD (no longer the mailbox's head: already done, a stale
-- redelivery), R.HELD_ELSEWHERE (another live copy holds it).
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or head_id(head) ~= ARGV[1] then return R.NOT_HEAD end
if not redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[3]) then
  if redis.call('GET', KEYS[3]) ~= ARGV[4] then return R.HELD_ELSEWHERE end
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), KEYS[1])
return R.CLAIMED
