"""sanshen (审校助手): a WeCom bot for 三审三校 review, duty watch and the 14-day rule."""
