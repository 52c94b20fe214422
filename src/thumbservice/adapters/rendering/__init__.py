"""Renderers: the ImageRenderer port's adapters and what runs in their worker processes.

* `pool`: the renderer the service holds, a pool of worker processes with their limits;
  `worker`: what a job does in one of them.
* `framecache`: the frame cache, full-resolution pictures kept on disk and shared by every
  worker; `views`: thumbnails drawn from a kept picture; `regions`: the IIIF views cut from it.
* `fits2image_renderer`: fits2image itself, the reference picture.
* `engine`: the image engine the fast renderer is made of (decode, samples, stretch, reduce,
  colour, label), pure computation on files and arrays, knowing nothing of processes or caches.
"""
