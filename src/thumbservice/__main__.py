"""`python -m thumbservice`: serve, configured only from the environment."""

from thumbservice.entrypoints.app import main

if __name__ == "__main__":
    main()
