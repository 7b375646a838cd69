"""llmtap.ext"""
