-- include: dispatch
-- Close a burst (workers/delivery/burst.py): the head job of a conversation's mailbox, still claimed by this copy,
-- merges itself and the entries queued right behind it into the burst's last message, which answers them all.
-- In one atomic step: every earlier member's ledger gets `flag:merged` = the last member's ref (its send gate then
-- refuses every part, shared/scripts/ledger_send.lua) and `merged_ms`; the last member's ledger gets `burst` (the
-- members' refs in order, JSON) and `burst_closed_ms`; the earlier members' entries leave the inbox, and the last
-- member, now the head, is handed to its queue. A message ingested meanwhile is behind the last member: it starts
-- the next turn, it never joins a burst already closed.
-- KEYS: inbox, leases, the head's run key, then the members' ledgers in arrival order (at least two).
-- ARGV: token, now_ms, lease_ms, the last member's ref, the burst (JSON), then the members' task ids in order.
-- Returns R.MERGED, R.HELD_ELSEWHERE (this copy no longer holds the head's claim), R.NOT_HEAD (the inbox does
-- not start with these members) or R.BURST_CHANGED (the last member was edited or deleted since the burst was
-- decided: ledger_amend.lua flagged it, and its flag would stop the burst's answer); nothing changes in the last
-- three cases. An earlier member flagged so stays a member: the burst's answer leaves it out.
local members = #KEYS - 3
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return R.HELD_ELSEWHERE end
for i = 1, members do
  local entry = redis.call('LINDEX', KEYS[1], i - 1)
  if not entry or head_id(entry) ~= ARGV[5 + i] then return R.NOT_HEAD end
end
local last = KEYS[3 + members]
if redis.call('HEXISTS', last, 'flag:superseded') == 1 or redis.call('HEXISTS', last, 'flag:cancelled') == 1 then
  return R.BURST_CHANGED
end
for i = 1, members - 1 do
  redis.call('HSET', KEYS[3 + i], 'flag:merged', ARGV[4], 'merged_ms', ARGV[2])
end
redis.call('HSET', KEYS[3 + members], 'burst', ARGV[5], 'burst_closed_ms', ARGV[2])
redis.call('LTRIM', KEYS[1], members - 1, -1)
redis.call('DEL', KEYS[3])
dispatch(redis.call('LINDEX', KEYS[1], 0), KEYS[1], KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]))
return R.MERGED
