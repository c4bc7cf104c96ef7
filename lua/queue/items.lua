#!lua flags=no-writes
--[[ queue/items
  List every item, newest first (LRANGE 0 -1), without removing any.
  KEYS[1]  queue  list
  Returns  an array of item bytes (empty when the key does not exist)
  Worst case  O(N) in the queue's length: the whole queue is returned, as
    Python redisext returns it
]]
return redis.call('LRANGE', KEYS[1], 0, -1)
