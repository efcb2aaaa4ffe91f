package vault

// Logins returns how many times b logged in to Vault (token method: adopted
// its token) since the last Configure.
func Logins(b *Backend) int64 {
	c, err := b.current("Logins")
	if err != nil {
		return 0
	}
	return c.auth.logins.Load()
}

// Renewals returns how many times b renewed its token since the last
// Configure.
func Renewals(b *Backend) int64 {
	c, err := b.current("Renewals")
	if err != nil {
		return 0
	}
	return c.auth.renewals.Load()
}
