"""Media: images and files users upload over REST and then send in messages.

    api/media.py → service (sniff the type, scan images for QR codes, store)
                 → store (local disk; the interface an S3-compatible store would fill)

A message shows a medium by its ``media_id``; the send stage in :mod:`app.media.stage`
checks the sender may use it, describes it in the content, and puts the links its QR
codes hold through the app's domain lists. Who may fetch a medium is decided in
:func:`app.media.service.access_fetch`.
"""
