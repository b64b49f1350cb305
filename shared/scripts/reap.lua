-- include: dispatch
-- Re-dispatches the head of every conversation whose lease ran out (its worker died without Celery giving the
-- message back yet).
-- KEYS: leases. ARGV: now_ms, lease_ms, limit. Returns how many were handed out again (a count, not a result code).
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, inbox in ipairs(expired) do
  local head = redis.call('LINDEX', inbox, 0)
  if head then
    redis.call('DEL', 'lp:run:' .. head_id(head))
    dispatch(head, inbox, KEYS[1], now + tonumber(ARGV[2]))
    n = n + 1
  else
    redis.call('ZREM', KEYS[1], inbox)
  end
end
return n
