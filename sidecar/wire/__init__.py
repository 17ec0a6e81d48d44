"""Wire formats: what the client speaks (`openai`) and the framing of streams (`sse`)."""
