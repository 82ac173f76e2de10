package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// asymmetricAlgs are the algorithms a JWKS key may be pinned to.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// pinnedKey is a verification key and the one algorithm it verifies.
type pinnedKey struct {
	alg string
	key any
}

// algFor is the algorithm a public key is pinned to when nothing names
// one (a PEM file, a JWK without "alg"): RS256 for RSA, ES256/384/512 by
// curve for ECDSA, EdDSA for Ed25519. "" for any other key.
func algFor(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return jwt.SigningMethodRS256.Alg()
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jwt.SigningMethodES256.Alg()
		case elliptic.P384():
			return jwt.SigningMethodES384.Alg()
		case elliptic.P521():
			return jwt.SigningMethodES512.Alg()
		}
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg()
	}
	return ""
}

// ParsePublicKeys returns the public keys of the PEM blocks in data:
// "PUBLIC KEY" (PKIX: RSA, ECDSA P-256/384/521, Ed25519), "RSA PUBLIC
// KEY" (PKCS #1) or "CERTIFICATE" (its subject's key). It refuses data
// with no key and any key of another kind.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("pem block %q is not a public key or certificate", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("pem block %q: %w", block.Type, err)
		}
		if algFor(key) == "" {
			return nil, fmt.Errorf("pem block %q: unsupported key type %T", block.Type, key)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no pem public key found")
	}
	return keys, nil
}

// ReadPublicKeyFiles returns the public keys of the PEM files at paths
// (see ParsePublicKeys).
func ReadPublicKeyFiles(paths ...string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("jwt public key: %w", err)
		}
		k, err := ParsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("jwt public key %s: %w", p, err)
		}
		keys = append(keys, k...)
	}
	return keys, nil
}
