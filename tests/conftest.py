import os

os.environ.setdefault('MUJOCO_GL', 'disable')
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=1')
