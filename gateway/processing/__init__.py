"""Turning received messages into orders, split by what each step is responsible for.

    receive.py       store the raw bytes once (step 1; the source is acknowledged after it)
    process.py       parse, map, validate, link versions, queue deliveries (step 2)
    interchanges.py  interchange repeats and reused control numbers (CONTROL_NUMBER_REUSED)
    email_trust.py   whose orders an e-mail carries: the verified sender, never the From header
    acknowledge.py   acknowledgements and confirmation e-mails, queued for the dispatcher (outbox rows)
    review.py        held orders and refused messages a person decides on
    run.py           the working state of processing one message

None of them performs network I/O; every SQL statement goes through gateway.store's
repositories. `gateway.pipeline.Pipeline` assembles them behind one object.
"""
