"""The SIP voice line (issue 17): a user agent client on asyncio behind lines/voice.py.

:mod:`.transport` carries SIP over UDP or TCP to the trunk, :mod:`.media` sends paced RTP and
reads RFC 4733 keys, :mod:`.call` runs one call, :mod:`.line` is the VoiceLine.
"""
