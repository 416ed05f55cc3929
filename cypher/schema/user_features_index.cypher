// Purpose: cold start: users with the same occupation and gender and a close age.
// Parameters: none.
CREATE INDEX user_features IF NOT EXISTS FOR (n:User) ON (n.occupation, n.gender, n.age)
