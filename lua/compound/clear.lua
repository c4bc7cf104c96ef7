#!lua flags=allow-oom
--[[ compound/clear
  Delete every key of a model at once (UNLINK: the memory is reclaimed in the background).
  KEYS[1]  key  the model's key
  KEYS[2..]  siblings  its sibling keys
  Returns  the number of keys that existed
  Worst case  O(K) for the K keys named; freeing their elements happens off the main thread
]]
return redis.call('UNLINK', unpack(KEYS))
