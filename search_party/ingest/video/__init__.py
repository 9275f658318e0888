"""The video stage: decode clips (decode), choose frames to look at (sampling), skip still ones
(search_party.motion), and run those three in a thread of their own (feed)."""
