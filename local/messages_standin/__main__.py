"""`python -m local.messages_standin`: the stand-in in a process of its own."""

from local.messages_standin.server import main

main()
