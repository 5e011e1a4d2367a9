"""Staff accounts: people who sign in to the console, with the roles API keys have"""
