"""llmtap.gateway"""
