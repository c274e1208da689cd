"""What a video holds: media facts and renditions (ffmpeg), speech, detections, timeline entities,
subtitles, exports, and the stages that run them in order."""
