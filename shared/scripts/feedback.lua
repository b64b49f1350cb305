-- A user's reaction to one of the bot's messages, kept as feedback in the ledger of the message it answered
-- (shared/ledger.py: `feedback:<part>` the emoji, `feedback:<part>:at` epoch ms); an empty emoji (the reaction
-- removed) removes it. Never creates a ledger: one that expired stays gone.
-- KEYS[1] the answered message's ledger. ARGV: part, emoji ('' = removed), now_ms.
-- Returns R.WRITTEN, or R.NO_LEDGER (expired).
if redis.call('EXISTS', KEYS[1]) == 0 then return R.NO_LEDGER end
local field = 'feedback:' .. ARGV[1]
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], field, field .. ':at')
else
  redis.call('HSET', KEYS[1], field, ARGV[2], field .. ':at', ARGV[3])
end
return R.WRITTEN
