"""`cropray label`: a loopback-only labelling page over a suggest queue (server.py), durable answers
(store.py), the queue (queue.py) and server-side crop images (render.py)."""
