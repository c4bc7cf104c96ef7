#!lua
--[[ priority_queue/push
  Add an item with an integer priority, or change the priority of an item that
  is already queued (ZADD; Python redisext stores int(priority) as the score).
  KEYS[1]  queue  priority queue (sorted set)
  ARGV[1]  priority  a decimal integer within +-2^53 (exact as a score)
  ARGV[2]  item  encoded item
  Returns  1 when the item is new, 0 when its priority was updated
  Worst case  O(log N)
]]
return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
