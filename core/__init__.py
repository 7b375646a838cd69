"""llmtap.core"""
