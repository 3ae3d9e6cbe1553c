"""Application services: decide, start a stage, close cards, page an incident — called by chat, scheduler and pages alike."""
