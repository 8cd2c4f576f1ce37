"""Maths below the protocols: Paillier, primes, ring-Pedersen, polynomials, Shamir, HPKE,
transcripts and the injectable randomness."""
