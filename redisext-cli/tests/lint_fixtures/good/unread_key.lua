#!lua flags=no-writes
--[[ good/unread_key
  Read a model's settings: the model's own key is passed for its name only,
  and the header says so.
  KEYS[1]  queue  list (not read: it names the model)
  KEYS[2]  settings  hash
  Returns  the capacity, or nil
  Worst case  O(1)
]]
return redis.call('HGET', KEYS[2], 'capacity')
