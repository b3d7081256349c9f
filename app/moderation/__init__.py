"""Content security: keywords, links and anti-spam, as one stage of the send pipeline.

    stage        the send stage: admission (rate, penalties), content checks, floods
    policy       an app's settings and rules compiled for matching
    cache        each node's compiled copies, kept fresh by a version in the database
    normalise    folding text for matching, and mapping matches back to typed text
    keywords     the keyword automaton
    links        finding links and checking hosts against domain lists
    spam         token buckets and flood detection (in-process state)
    lists        the App Server's control of keywords, domains and settings
    review       the moderation log, reports and verdicts

The pure modules (normalise, keywords, links, spam, policy) need no database and are
tested alone; the stage is wired into ``Context.send_stages`` in app.main.
"""
