// Purpose: store a new API key: its public id, the sha256 of its secret, its scope.
// Parameters: $id, $hash (hex sha256 of the secret), $scope ('read'|'write'|'admin'),
//             $created_at (epoch seconds), $name (free label or null).
// Example: $id = 'k1a2b3c4d5e6', $hash = '9f86…', $scope = 'read', $created_at = 1700000000.0,
//          $name = null
CREATE (k:ApiKey {id: $id, hash: $hash, scope: $scope, created_at: $created_at,
                  revoked: false, name: $name})
RETURN k.id AS id
