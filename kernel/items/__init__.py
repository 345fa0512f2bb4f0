"""Items: queries, reads and writes of user data under the caller's permissions."""
