"""Who may do what: user accounts and passwords, widget and preview tokens, secret
rotation, and the `.env` writer."""
