-- The industry baseline: the flash-sale rules pintuan enforces, as one Redis
-- Lua script (the usual way shops do 秒杀 on Redis). Idempotency by request
-- id, per-user limit, stock, and a hold with an expiry (a sorted set reaped
-- a few entries at a time, as such scripts do).
-- KEYS: 1 campaign hash (available, held, seq), 2 request-id hash,
--       3 per-user hash, 4 holds sorted set (score: expiry ms)
-- ARGV: 1 request id, 2 user, 3 quantity, 4 per-user limit, 5 hold ms
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev then return 'REPLAY:' .. prev end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 8)) do
  local user, q = string.match(h, '^(.*):(%d+):%d+$')
  q = tonumber(q)
  redis.call('HINCRBY', KEYS[1], 'available', q)
  redis.call('HINCRBY', KEYS[1], 'held', -q)
  redis.call('HINCRBY', KEYS[3], user, -q)
  redis.call('ZREM', KEYS[4], h)
end
local q = tonumber(ARGV[3])
local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
local res
if mine + q > tonumber(ARGV[4]) then
  res = 'LIMIT_EXCEEDED'
elseif tonumber(redis.call('HGET', KEYS[1], 'available') or '0') < q then
  res = 'SOLD_OUT'
else
  redis.call('HINCRBY', KEYS[1], 'available', -q)
  redis.call('HINCRBY', KEYS[1], 'held', q)
  redis.call('HINCRBY', KEYS[3], ARGV[2], q)
  local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[2] .. ':' .. q .. ':' .. id)
  res = 'OK:' .. id
end
redis.call('HSET', KEYS[2], ARGV[1], res)
return res
