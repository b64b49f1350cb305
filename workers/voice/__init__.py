"""Voice notes: TTS text chunking, WAV handling, OGG inspection and ffmpeg transcoding (no temp files)."""
