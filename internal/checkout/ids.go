package checkout

import (
	"crypto/rand"
	"encoding/hex"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so codes survive being read aloud.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewBookingCode returns "WK-" and 8 random Crockford base32 characters (40 bits).
func NewBookingCode() string {
	var b [8]byte
	rand.Read(b[:]) // never fails: crypto/rand panics rather than return an error since Go 1.24
	code := []byte("WK-00000000")
	for i, v := range b {
		code[3+i] = crockford[v&31]
	}
	return string(code)
}

// NewGroupIdentifier returns a random (version 4) UUID.
func NewGroupIdentifier() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
