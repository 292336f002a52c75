"""Guards run by operators and CI: the secret scanner and the payment guard."""
