// Purpose: mark versions whose vectors live in a slot about to be rewritten as 'superseded'
//          (they can no longer be activated; rollback is possible to the other slot's version).
// Parameters: $slot, $version (the version about to be written).
// Example: $slot = 'a', $version = 'v3'
MATCH (o:Model {slot: $slot})
WHERE o.version <> $version AND NOT coalesce(o.active, false)
SET o.status = 'superseded'
RETURN count(o) AS superseded
