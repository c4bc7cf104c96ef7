#!lua flags=allow-oom
--[[ reliable_queue/pop_dead
  Take the oldest dead letter (an item delivered the maximum number of times).
  KEYS[1]  ready  list of ids (not read: it names the model)
  KEYS[2]  dead  dead-letter list (oldest at the tail)
  Returns  the value, or nil when there is none
  Worst case  O(1)
]]
return redis.call('RPOP', KEYS[2])
