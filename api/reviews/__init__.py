"""Review monitoring: scheduled reviews that confirm a decision"""
